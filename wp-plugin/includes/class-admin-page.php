<?php
/**
 * Admin page "KYC Verifications" and the KYC column on the Users screen.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * Counts with a chart, the funnel, the review queue and the filterable list of inquiries.
 */
final class Admin_Page {

	const SLUG     = 'kyc-verifications';
	const PER_PAGE = 20;

	/**
	 * Hook suffix of the page.
	 *
	 * @var string
	 */
	private static $hook = '';

	/**
	 * Add the menu entry (admin_menu).
	 */
	public static function add_page() {
		self::$hook = (string) add_menu_page(
			__( 'KYC Verifications', 'kyc-bridge' ),
			__( 'KYC Verifications', 'kyc-bridge' ),
			Lifecycle::CAPABILITY,
			self::SLUG,
			array( self::class, 'render' ),
			'dashicons-id-alt',
			71
		);
	}

	/**
	 * Styles of the page (admin_enqueue_scripts).
	 *
	 * @param string $hook Current admin page.
	 */
	public static function enqueue( $hook ) {
		if ( '' !== self::$hook && self::$hook === $hook ) {
			wp_enqueue_style( 'kycb-admin', plugins_url( 'assets/css/admin.css', KYCB_PLUGIN_FILE ), array(), VERSION );
		}
	}

	/**
	 * Link to an inquiry in Persona's dashboard.
	 *
	 * @param string $inquiry_id Persona inquiry id (inq_…).
	 * @return string
	 */
	public static function persona_url( $inquiry_id ) {
		$url = 'https://app.withpersona.com/dashboard/inquiries/' . rawurlencode( $inquiry_id );
		/**
		 * Link to an inquiry in Persona's dashboard.
		 *
		 * @param string $url        URL.
		 * @param string $inquiry_id Inquiry id.
		 */
		return (string) apply_filters( 'kycb_persona_dashboard_url', $url, $inquiry_id );
	}

	/**
	 * Translated status names.
	 *
	 * @return array<string, string>
	 */
	public static function status_labels() {
		return array(
			'not_started'  => __( 'Not started', 'kyc-bridge' ),
			'created'      => __( 'Created', 'kyc-bridge' ),
			'pending'      => __( 'Pending', 'kyc-bridge' ),
			'completed'    => __( 'Completed', 'kyc-bridge' ),
			'needs_review' => __( 'Needs review', 'kyc-bridge' ),
			'approved'     => __( 'Approved', 'kyc-bridge' ),
			'declined'     => __( 'Declined', 'kyc-bridge' ),
			'failed'       => __( 'Failed', 'kyc-bridge' ),
			'expired'      => __( 'Expired', 'kyc-bridge' ),
		);
	}

	/**
	 * The filters of the list, from the query string.
	 *
	 * @return array{status: string, user_type: string, email: string, paged: int}
	 */
	public static function filters() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended, KycBridge.Security.NonceVerification.Recommended -- read-only list filters.
		$status = isset( $_GET['status'] ) ? sanitize_key( wp_unslash( $_GET['status'] ) ) : '';
		$type   = isset( $_GET['user_type'] ) ? sanitize_key( wp_unslash( $_GET['user_type'] ) ) : '';
		$email  = isset( $_GET['email'] ) ? sanitize_email( wp_unslash( $_GET['email'] ) ) : '';
		$paged  = isset( $_GET['paged'] ) ? absint( $_GET['paged'] ) : 1;
		// phpcs:enable
		return array(
			'status'    => in_array( $status, Status::ALL, true ) ? $status : '',
			'user_type' => in_array( $type, Settings::USER_TYPES, true ) ? $type : '',
			'email'     => $email,
			'paged'     => max( 1, $paged ),
		);
	}

	/**
	 * The page.
	 */
	public static function render() {
		if ( ! current_user_can( Lifecycle::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to see verifications.', 'kyc-bridge' ), 403 );
		}
		$client  = Bridge_Client::from_settings();
		$filters = self::filters();
		echo '<div class="wrap kycb-admin"><h1>' . esc_html__( 'KYC Verifications', 'kyc-bridge' ) . '</h1>';

		$stats = $client->stats();
		if ( is_wp_error( $stats ) ) {
			self::bridge_notice( $stats );
			echo '</div>';
			return;
		}
		echo '<div class="kycb-panels">';
		self::render_counts( isset( $stats['counts'] ) && is_array( $stats['counts'] ) ? $stats['counts'] : array() );
		self::render_funnel( isset( $stats['funnel'] ) && is_array( $stats['funnel'] ) ? $stats['funnel'] : array() );
		echo '</div>';
		$target = isset( $stats['review_target_hours'] ) ? (float) $stats['review_target_hours'] : 24.0;
		self::render_queue( isset( $stats['review_queue'] ) && is_array( $stats['review_queue'] ) ? $stats['review_queue'] : array(), $target );

		$page = $client->inquiries(
			array(
				'status'    => $filters['status'],
				'user_type' => $filters['user_type'],
				'email'     => $filters['email'],
				'page'      => $filters['paged'],
				'per_page'  => self::PER_PAGE,
			)
		);
		self::render_filters( $filters );
		if ( is_wp_error( $page ) ) {
			self::bridge_notice( $page );
		} else {
			self::render_table( $page );
		}
		echo '</div>';
	}

	/**
	 * Say why the bridge gave no data.
	 *
	 * @param \WP_Error $error Error.
	 */
	private static function bridge_notice( $error ) {
		echo '<div class="notice notice-error"><p>' . esc_html( $error->get_error_message() ) . '</p>';
		if ( current_user_can( 'manage_options' ) ) {
			echo '<p><a href="' . esc_url( admin_url( 'options-general.php?page=' . Settings::PAGE ) ) . '">' . esc_html__( 'Check the KYC Bridge settings', 'kyc-bridge' ) . '</a></p>';
		}
		echo '</div>';
	}

	/**
	 * Counts per status: a table and an inline SVG bar chart (no external library).
	 *
	 * @param array<string, int> $counts Status → count.
	 */
	private static function render_counts( $counts ) {
		$labels = self::status_labels();
		$rows   = array();
		foreach ( $labels as $status => $label ) {
			if ( 'not_started' !== $status ) {
				$rows[ $status ] = isset( $counts[ $status ] ) ? (int) $counts[ $status ] : 0;
			}
		}
		$max    = max( 1, max( $rows ) );
		$bar_h  = 22;
		$height = count( $rows ) * $bar_h + 4;
		$parts  = array();
		foreach ( $rows as $status => $count ) {
			/* translators: 1: status name, 2: number of inquiries. */
			$parts[] = sprintf( __( '%1$s: %2$d', 'kyc-bridge' ), $labels[ $status ], $count );
		}

		echo '<section class="kycb-panel kycb-counts"><h2>' . esc_html__( 'Verifications per status', 'kyc-bridge' ) . '</h2>';
		printf(
			'<svg class="kycb-chart" width="420" height="%1$d" viewBox="0 0 420 %1$d" role="img" aria-labelledby="kycb-chart-title kycb-chart-desc"><title id="kycb-chart-title">%2$s</title><desc id="kycb-chart-desc">%3$s</desc>',
			(int) $height,
			esc_html__( 'Verifications per status', 'kyc-bridge' ),
			esc_html( implode( ', ', $parts ) )
		);
		$y = 2;
		foreach ( $rows as $status => $count ) {
			$width = $count > 0 ? max( 2, (int) round( 250 * $count / $max ) ) : 0;
			printf(
				'<g class="kycb-bar kycb-bar--%1$s" data-status="%1$s" data-count="%2$d"><text x="0" y="%3$d" class="kycb-bar-label">%4$s</text><rect x="110" y="%5$d" width="%6$d" height="%7$d" rx="2"></rect><text x="%8$d" y="%3$d" class="kycb-bar-value">%2$d</text></g>',
				esc_attr( $status ),
				(int) $count,
				(int) ( $y + 15 ),
				esc_html( $labels[ $status ] ),
				(int) $y,
				(int) $width,
				(int) ( $bar_h - 6 ),
				(int) ( 116 + $width )
			);
			$y += $bar_h;
		}
		echo '</svg>';
		echo '<table class="widefat striped kycb-count-table screen-reader-text"><caption>' . esc_html__( 'Verifications per status', 'kyc-bridge' ) . '</caption><tbody>';
		foreach ( $rows as $status => $count ) {
			printf( '<tr><th scope="row">%1$s</th><td>%2$s</td></tr>', esc_html( $labels[ $status ] ), esc_html( number_format_i18n( $count ) ) );
		}
		echo '</tbody></table></section>';
	}

	/**
	 * The funnel consented → started → completed → approved.
	 *
	 * @param array<string, int> $funnel Step → count.
	 */
	private static function render_funnel( $funnel ) {
		$steps = array(
			'consented' => __( 'Consented', 'kyc-bridge' ),
			'started'   => __( 'Started', 'kyc-bridge' ),
			'completed' => __( 'Completed', 'kyc-bridge' ),
			'approved'  => __( 'Approved', 'kyc-bridge' ),
		);
		$first = isset( $funnel['consented'] ) ? (int) $funnel['consented'] : 0;
		$base  = max( 1, $first, isset( $funnel['started'] ) ? (int) $funnel['started'] : 0 );
		echo '<section class="kycb-panel kycb-funnel"><h2>' . esc_html__( 'Funnel', 'kyc-bridge' ) . '</h2><ol>';
		foreach ( $steps as $key => $label ) {
			$count = isset( $funnel[ $key ] ) ? (int) $funnel[ $key ] : 0;
			$share = (int) round( 100 * $count / $base );
			printf(
				'<li class="kycb-funnel-step" data-step="%1$s"><span class="kycb-funnel-label">%2$s</span> <strong class="kycb-funnel-count">%3$s</strong> <span class="kycb-funnel-bar" style="width:%4$d%%" aria-hidden="true"></span></li>',
				esc_attr( $key ),
				esc_html( $label ),
				esc_html( number_format_i18n( $count ) ),
				(int) min( 100, $share )
			);
		}
		echo '</ol></section>';
	}

	/**
	 * Enhanced cases waiting for a manual review, against the review target.
	 *
	 * @param array $queue  Bridge's review queue.
	 * @param float $target Target in hours.
	 */
	private static function render_queue( $queue, $target ) {
		/* translators: %s: number of hours. */
		$title = sprintf( __( 'Review queue (target: %s hours)', 'kyc-bridge' ), number_format_i18n( $target ) );
		echo '<section class="kycb-queue"><h2>' . esc_html( $title ) . '</h2>';
		if ( ! $queue ) {
			echo '<p>' . esc_html__( 'No inquiry waits for a review.', 'kyc-bridge' ) . '</p></section>';
			return;
		}
		echo '<table class="widefat striped kycb-queue-table"><thead><tr>';
		foreach ( array( __( 'Inquiry', 'kyc-bridge' ), __( 'User type', 'kyc-bridge' ), __( 'Level', 'kyc-bridge' ), __( 'Waiting since', 'kyc-bridge' ), __( 'Waited', 'kyc-bridge' ) ) as $heading ) {
			echo '<th scope="col">' . esc_html( $heading ) . '</th>';
		}
		echo '</tr></thead><tbody>';
		foreach ( $queue as $item ) {
			$inquiry = isset( $item['inquiry_id'] ) ? (string) $item['inquiry_id'] : '';
			$hours   = isset( $item['waiting_hours'] ) ? (float) $item['waiting_hours'] : 0.0;
			$overdue = ! empty( $item['overdue'] );
			/* translators: 1: hours waited, 2: target hours. */
			$waited = sprintf( __( '%1$s h of %2$s h', 'kyc-bridge' ), number_format_i18n( $hours, 1 ), number_format_i18n( $target ) );
			printf(
				'<tr class="kycb-queue-row%1$s" data-inquiry-id="%2$s"><td><a href="%3$s" target="_blank" rel="noopener noreferrer">%4$s</a></td><td>%5$s</td><td>%6$s</td><td>%7$s</td><td>%8$s%9$s</td></tr>',
				$overdue ? ' kycb-overdue' : '',
				esc_attr( $inquiry ),
				esc_url( self::persona_url( $inquiry ) ),
				esc_html( $inquiry ),
				esc_html( self::type_label( isset( $item['user_type'] ) ? (string) $item['user_type'] : '' ) ),
				esc_html( isset( $item['level'] ) ? (string) $item['level'] : '' ),
				esc_html( self::when( isset( $item['waiting_since'] ) ? (string) $item['waiting_since'] : '' ) ),
				esc_html( $waited ),
				$overdue ? ' <strong class="kycb-badge-overdue">' . esc_html__( 'overdue', 'kyc-bridge' ) . '</strong>' : ''
			);
		}
		echo '</tbody></table></section>';
	}

	/**
	 * The filter form (GET).
	 *
	 * @param array $filters Current filters.
	 */
	private static function render_filters( $filters ) {
		echo '<h2>' . esc_html__( 'Inquiries', 'kyc-bridge' ) . '</h2>';
		echo '<form method="get" class="kycb-filters"><input type="hidden" name="page" value="' . esc_attr( self::SLUG ) . '" />';
		echo '<label for="kycb-filter-status">' . esc_html__( 'Status', 'kyc-bridge' ) . '</label> <select id="kycb-filter-status" name="status"><option value="">' . esc_html__( 'All statuses', 'kyc-bridge' ) . '</option>';
		foreach ( self::status_labels() as $value => $label ) {
			if ( 'not_started' !== $value ) {
				printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( $filters['status'], $value, false ), esc_html( $label ) );
			}
		}
		echo '</select> <label for="kycb-filter-type">' . esc_html__( 'User type', 'kyc-bridge' ) . '</label> <select id="kycb-filter-type" name="user_type"><option value="">' . esc_html__( 'All user types', 'kyc-bridge' ) . '</option>';
		foreach ( Settings::user_type_labels() as $value => $label ) {
			printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( $filters['user_type'], $value, false ), esc_html( $label ) );
		}
		echo '</select> <label for="kycb-filter-email">' . esc_html__( 'Email', 'kyc-bridge' ) . '</label> ';
		echo '<input type="email" id="kycb-filter-email" name="email" value="' . esc_attr( $filters['email'] ) . '" /> ';
		submit_button( __( 'Filter', 'kyc-bridge' ), 'secondary', 'kycb-filter', false );
		echo '</form>';
	}

	/**
	 * The inquiry table with pagination.
	 *
	 * @param array $page The bridge's page of inquiries.
	 */
	private static function render_table( $page ) {
		$items  = isset( $page['items'] ) && is_array( $page['items'] ) ? $page['items'] : array();
		$total  = isset( $page['total'] ) ? (int) $page['total'] : 0;
		$pages  = isset( $page['pages'] ) ? (int) $page['pages'] : 1;
		$labels = self::status_labels();
		/* translators: %s: number of inquiries. */
		echo '<p class="kycb-total">' . esc_html( sprintf( _n( '%s inquiry', '%s inquiries', $total, 'kyc-bridge' ), number_format_i18n( $total ) ) ) . '</p>';
		echo '<table class="widefat striped kycb-inquiries"><thead><tr>';
		foreach ( array( __( 'Inquiry', 'kyc-bridge' ), __( 'Email', 'kyc-bridge' ), __( 'Status', 'kyc-bridge' ), __( 'User type', 'kyc-bridge' ), __( 'Level', 'kyc-bridge' ), __( 'Updated', 'kyc-bridge' ), __( 'CRM sync', 'kyc-bridge' ) ) as $heading ) {
			echo '<th scope="col">' . esc_html( $heading ) . '</th>';
		}
		echo '</tr></thead><tbody>';
		if ( ! $items ) {
			echo '<tr><td colspan="7">' . esc_html__( 'No inquiries match.', 'kyc-bridge' ) . '</td></tr>';
		}
		foreach ( $items as $item ) {
			$inquiry = isset( $item['inquiry_id'] ) ? (string) $item['inquiry_id'] : '';
			$status  = isset( $item['status'] ) ? (string) $item['status'] : '';
			$sync    = isset( $item['crm_sync'] ) ? (string) $item['crm_sync'] : '';
			$error   = isset( $item['crm_sync_error'] ) ? (string) $item['crm_sync_error'] : '';
			printf(
				'<tr class="kycb-row" data-inquiry-id="%1$s" data-status="%2$s"><td><a href="%3$s" target="_blank" rel="noopener noreferrer">%4$s</a></td><td>%5$s</td><td><span class="kycb-status kycb-status--%2$s">%6$s</span></td><td>%7$s</td><td>%8$s</td><td>%9$s</td><td title="%10$s">%11$s</td></tr>',
				esc_attr( $inquiry ),
				esc_attr( $status ),
				esc_url( self::persona_url( $inquiry ) ),
				esc_html( $inquiry ),
				esc_html( isset( $item['email'] ) ? (string) $item['email'] : '—' ),
				esc_html( isset( $labels[ $status ] ) ? $labels[ $status ] : $status ),
				esc_html( self::type_label( isset( $item['user_type'] ) ? (string) $item['user_type'] : '' ) ),
				esc_html( isset( $item['level'] ) ? (string) $item['level'] : '' ),
				esc_html( self::when( isset( $item['updated_at'] ) ? (string) $item['updated_at'] : '' ) ),
				esc_attr( $error ),
				esc_html( $sync )
			);
		}
		echo '</tbody></table>';
		if ( $pages > 1 ) {
			$links = paginate_links(
				array(
					'base'    => add_query_arg( 'paged', '%#%' ),
					'format'  => '',
					'current' => isset( $page['page'] ) ? (int) $page['page'] : 1,
					'total'   => $pages,
				)
			);
			echo '<nav class="tablenav kycb-pagination" aria-label="' . esc_attr__( 'Inquiry pages', 'kyc-bridge' ) . '"><div class="tablenav-pages">' . wp_kses_post( $links ) . '</div></nav>';
		}
	}

	/**
	 * A user type's label.
	 *
	 * @param string $type User type.
	 * @return string
	 */
	private static function type_label( $type ) {
		$labels = Settings::user_type_labels();
		return isset( $labels[ $type ] ) ? $labels[ $type ] : $type;
	}

	/**
	 * An ISO time of the bridge in the site's format and time zone.
	 *
	 * @param string $iso ISO 8601 time.
	 * @return string
	 */
	private static function when( $iso ) {
		$time = '' !== $iso ? strtotime( $iso ) : false;
		if ( ! $time ) {
			return '';
		}
		return wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $time );
	}

	/**
	 * Add the KYC column (manage_users_columns) for those who may see verifications.
	 *
	 * @param array $columns Columns.
	 * @return array
	 */
	public static function users_column( $columns ) {
		if ( current_user_can( Lifecycle::CAPABILITY ) ) {
			$columns['kycb_kyc'] = __( 'KYC', 'kyc-bridge' );
		}
		return $columns;
	}

	/**
	 * The KYC column's value: the bridge's status of the user (cached).
	 *
	 * @param string $output  Existing output.
	 * @param string $column  Column name.
	 * @param int    $user_id User id.
	 * @return string
	 */
	public static function users_column_value( $output, $column, $user_id ) {
		if ( 'kycb_kyc' !== $column || ! current_user_can( Lifecycle::CAPABILITY ) ) {
			return $output;
		}
		$answer = Kyc_Lookup::for_user( (int) $user_id );
		if ( is_wp_error( $answer ) ) {
			return '<span class="kycb-status kycb-status--unknown" title="' . esc_attr( $answer->get_error_message() ) . '">' . esc_html__( 'unknown', 'kyc-bridge' ) . '</span>';
		}
		$labels = self::status_labels();
		$status = (string) $answer['status'];
		$text   = isset( $labels[ $status ] ) ? $labels[ $status ] : $status;
		if ( ! empty( $answer['level'] ) && 'approved' === $status ) {
			$text .= ' (' . $answer['level'] . ')';
		}
		return '<span class="kycb-status kycb-status--' . esc_attr( $status ) . '">' . esc_html( $text ) . '</span>';
	}
}
