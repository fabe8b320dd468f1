<?php
/**
 * The admin's one-click fixes: each through admin-post.php with a nonce and a capability check,
 * each ending in an admin notice on the page it came from.
 *
 * @package KycBridge
 */

namespace KycBridge;

use WP_Error;

defined( 'ABSPATH' ) || exit;

/**
 * Re-sync an inquiry, retry a person's (or all) dead jobs, resend a verification link, export and
 * erase a person through WordPress's own privacy tools (which call the bridge's exporter and eraser).
 */
final class Admin_Actions {

	const ACTION = 'kycb_action';

	/**
	 * Each action: the capability it needs and whether its target is an email (else an inquiry id).
	 */
	const ACTIONS = array(
		'resync'    => array( Lifecycle::MANAGE_CAPABILITY, false ),
		'retry'     => array( Lifecycle::MANAGE_CAPABILITY, true ),
		'retry_all' => array( Lifecycle::MANAGE_CAPABILITY, false ),
		'resend'    => array( Lifecycle::MANAGE_CAPABILITY, true ),
		'export'    => array( 'export_others_personal_data', true ),
		'erase'     => array( 'erase_others_personal_data', true ),
	);

	/**
	 * The nonce action of one action on one target.
	 *
	 * @param string $action Action.
	 * @param string $target Inquiry id or email.
	 * @return string
	 */
	public static function nonce_action( $action, $target ) {
		return 'kycb_' . $action . '|' . strtolower( $target );
	}

	/**
	 * URL of an action (a GET link with a nonce, like WordPress's own row actions).
	 *
	 * @param string $action Action.
	 * @param string $target Inquiry id or email ('' for retry_all).
	 * @return string
	 */
	public static function url( $action, $target ) {
		$url = add_query_arg(
			array(
				'action' => self::ACTION,
				'do'     => $action,
				'target' => rawurlencode( $target ),
			),
			admin_url( 'admin-post.php' )
		);
		return wp_nonce_url( $url, self::nonce_action( $action, $target ) );
	}

	/**
	 * A row-action link.
	 *
	 * @param string $action Action.
	 * @param string $target Inquiry id or email.
	 * @param string $label  Link text.
	 * @return string
	 */
	public static function link( $action, $target, $label ) {
		return '<a class="kycb-action kycb-action--' . esc_attr( $action ) . '" href="' . esc_url( self::url( $action, $target ) ) . '">' . esc_html( $label ) . '</a>';
	}

	/**
	 * A POST form with one button (for the person view; erasure asks for a confirmation tick).
	 *
	 * @param string $action Action.
	 * @param string $target Email or inquiry id.
	 * @param string $label  Button text.
	 * @param string $class  Button class.
	 */
	public static function form( $action, $target, $label, $class = 'button' ) {
		echo '<form method="post" class="kycb-action-form kycb-action-form--' . esc_attr( $action ) . '" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="' . esc_attr( self::ACTION ) . '" /><input type="hidden" name="do" value="' . esc_attr( $action ) . '" /><input type="hidden" name="target" value="' . esc_attr( $target ) . '" />';
		wp_nonce_field( self::nonce_action( $action, $target ) );
		if ( 'erase' === $action ) {
			echo '<label><input type="checkbox" name="confirm" value="1" required /> ' . esc_html__( 'Yes, erase this person (the KYC decisions are kept without their name or email).', 'kyc-bridge' ) . '</label> ';
		}
		echo '<button type="submit" class="' . esc_attr( $class ) . '">' . esc_html( $label ) . '</button></form>';
	}

	/**
	 * The admin-post handler: check, do, remember the outcome, go back.
	 */
	public static function handle() {
		$action = isset( $_REQUEST['do'] ) ? sanitize_key( wp_unslash( $_REQUEST['do'] ) ) : ''; // phpcs:ignore KycBridge.Security.NonceVerification.Missing -- the nonce action names the action and target, so both are read first; check_admin_referer() below.
		$target = isset( $_REQUEST['target'] ) ? sanitize_text_field( rawurldecode( wp_unslash( $_REQUEST['target'] ) ) ) : ''; // phpcs:ignore KycBridge.Security.NonceVerification.Missing -- checked below with the nonce.
		if ( ! isset( self::ACTIONS[ $action ] ) ) {
			wp_die( esc_html__( 'Unknown action.', 'kyc-bridge' ), 400 );
		}
		if ( ! current_user_can( self::ACTIONS[ $action ][0] ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to do this.', 'kyc-bridge' ), 403 );
		}
		check_admin_referer( self::nonce_action( $action, $target ) );
		if ( self::ACTIONS[ $action ][1] && ! is_email( $target ) ) {
			wp_die( esc_html__( 'Not an email address.', 'kyc-bridge' ), 400 );
		}
		if ( 'erase' === $action && empty( $_POST['confirm'] ) ) {
			self::remember( 'error', __( 'Tick the confirmation to erase this person.', 'kyc-bridge' ) );
		} else {
			$outcome = self::run( $action, $target );
			if ( is_wp_error( $outcome ) ) {
				self::remember( 'error', $outcome->get_error_message() );
			} else {
				self::remember( 'success', $outcome['message'], isset( $outcome['link'] ) ? $outcome['link'] : '' );
			}
		}
		$back = wp_get_referer();
		wp_safe_redirect( $back ? $back : Admin_Page::url() );
		exit;
	}

	/**
	 * Do one action (after the checks).
	 *
	 * @param string $action Action.
	 * @param string $target Inquiry id or email.
	 * @return array|WP_Error {message, link?}
	 */
	public static function run( $action, $target ) {
		$client = Bridge_Client::from_settings();
		switch ( $action ) {
			case 'resync':
				$answer = $client->resync( $target );
				if ( is_wp_error( $answer ) ) {
					return $answer;
				}
				/* translators: %s: inquiry id. */
				$done = empty( $answer['queued'] ) ? __( 'A CRM sync of %s was already waiting; it sends the newest state.', 'kyc-bridge' ) : __( 'A CRM sync of %s is queued.', 'kyc-bridge' );
				return array( 'message' => sprintf( $done, $target ) );
			case 'retry':
			case 'retry_all':
				$answer = $client->retry_jobs( 'retry' === $action ? $target : '' );
				if ( is_wp_error( $answer ) ) {
					return $answer;
				}
				$count = isset( $answer['count'] ) ? (int) $answer['count'] : 0;
				/* translators: %s: number of jobs. */
				return array( 'message' => sprintf( _n( '%s failed job is queued again.', '%s failed jobs are queued again.', $count, 'kyc-bridge' ), number_format_i18n( $count ) ) );
			case 'resend':
				$answer = $client->resend_link( $target );
				if ( is_wp_error( $answer ) ) {
					return $answer;
				}
				Kyc_Lookup::forget( $target );
				/* translators: %s: email address. */
				return array( 'message' => sprintf( __( 'A new verification link for %s is on its way (n8n sends the email).', 'kyc-bridge' ), $target ) );
			case 'export':
				return self::export( $target );
			case 'erase':
				return self::erase( $target );
		}
		return new WP_Error( 'kycb_unknown_action', __( 'Unknown action.', 'kyc-bridge' ) );
	}

	/**
	 * A confirmed privacy request of this kind for the email: an open one, or a new one.
	 *
	 * @param string $email Email.
	 * @param string $kind  export_personal_data or remove_personal_data.
	 * @return int|WP_Error Request id.
	 */
	private static function privacy_request( $email, $kind ) {
		$open = get_posts(
			array(
				'post_type'     => 'user_request',
				'post_name__in' => array( $kind ),
				'title'         => $email,
				'post_status'   => array( 'request-pending', 'request-confirmed' ),
				'fields'        => 'ids',
				'numberposts'   => 1,
			)
		);
		if ( $open ) {
			$request_id = (int) $open[0];
			// An admin acting on a person's behalf confirms it, as Tools → Export Personal Data can.
			wp_update_post(
				array(
					'ID'          => $request_id,
					'post_status' => 'request-confirmed',
				)
			);
			return $request_id;
		}
		return wp_create_user_request( $email, $kind, array(), 'confirmed' );
	}

	/**
	 * WordPress's admin privacy functions (loaded on admin-post.php; not in other contexts).
	 */
	private static function load_privacy_tools() {
		require_once ABSPATH . 'wp-admin/includes/file.php';
		require_once ABSPATH . 'wp-admin/includes/privacy-tools.php';
		if ( ! has_filter( 'wp_privacy_personal_data_export_page', 'wp_privacy_process_personal_data_export_page' ) ) {
			add_filter( 'wp_privacy_personal_data_export_page', 'wp_privacy_process_personal_data_export_page', 10, 7 );
		}
		if ( ! has_filter( 'wp_privacy_personal_data_erasure_page', 'wp_privacy_process_personal_data_erasure_page' ) ) {
			add_filter( 'wp_privacy_personal_data_erasure_page', 'wp_privacy_process_personal_data_erasure_page', 10, 5 );
		}
	}

	/**
	 * Export through every registered exporter (this plugin's asks the bridge), as Tools → Export
	 * Personal Data does page by page; WordPress writes the zip file.
	 *
	 * @param string $email Email.
	 * @return array|WP_Error {message, link}
	 */
	public static function export( $email ) {
		if ( ! class_exists( 'ZipArchive' ) ) {
			return new WP_Error( 'kycb_no_zip', __( 'WordPress cannot write the export file: the PHP zip extension is missing.', 'kyc-bridge' ) );
		}
		self::load_privacy_tools();
		$request_id = self::privacy_request( $email, 'export_personal_data' );
		if ( is_wp_error( $request_id ) ) {
			return $request_id;
		}
		/** This filter is documented in wp-admin/includes/ajax-actions.php */
		$exporters = apply_filters( 'wp_privacy_personal_data_exporters', array() );
		$index     = 0;
		foreach ( $exporters as $key => $exporter ) {
			++$index;
			$page = 1;
			do {
				$response = call_user_func( $exporter['callback'], $email, $page );
				if ( is_wp_error( $response ) ) {
					return $response;
				}
				/** This filter is documented in wp-admin/includes/ajax-actions.php */
				$response = apply_filters( 'wp_privacy_personal_data_export_page', $response, $index, $email, $page, $request_id, false, $key );
				++$page;
			} while ( empty( $response['done'] ) && $page < 100 );
		}
		$file = (string) get_post_meta( $request_id, '_export_file_name', true );
		if ( '' === $file ) {
			return new WP_Error( 'kycb_export_failed', __( 'WordPress did not write the export file.', 'kyc-bridge' ) );
		}
		_wp_privacy_completed_request( $request_id );  // the next export starts a new request
		return array(
			/* translators: %s: email address. */
			'message' => sprintf( __( 'The personal data of %s is exported.', 'kyc-bridge' ), $email ),
			'link'    => wp_privacy_exports_url() . $file,
		);
	}

	/**
	 * Erase through every registered eraser (this plugin's asks the bridge, which keeps the KYC
	 * decisions and asks Persona to redact), as Tools → Erase Personal Data does.
	 *
	 * @param string $email Email.
	 * @return array|WP_Error {message}
	 */
	public static function erase( $email ) {
		self::load_privacy_tools();
		$request_id = self::privacy_request( $email, 'remove_personal_data' );
		if ( is_wp_error( $request_id ) ) {
			return $request_id;
		}
		/** This filter is documented in wp-admin/includes/ajax-actions.php */
		$erasers  = apply_filters( 'wp_privacy_personal_data_erasers', array() );
		$index    = 0;
		$messages = array();
		foreach ( $erasers as $key => $eraser ) {
			++$index;
			$page = 1;
			do {
				$response = call_user_func( $eraser['callback'], $email, $page );
				if ( is_wp_error( $response ) ) {
					return $response;
				}
				$messages = array_merge( $messages, isset( $response['messages'] ) ? (array) $response['messages'] : array() );
				/** This filter is documented in wp-admin/includes/ajax-actions.php */
				$response = apply_filters( 'wp_privacy_personal_data_erasure_page', $response, $index, $email, $page, $request_id, $key );
				++$page;
			} while ( empty( $response['done'] ) && $page < 100 );
		}
		Kyc_Lookup::forget( $email );
		/* translators: %s: email address. */
		$message = sprintf( __( 'The personal data of %s is erased.', 'kyc-bridge' ), $email );
		return array( 'message' => trim( $message . ' ' . implode( ' ', array_map( 'strval', $messages ) ) ) );
	}

	/**
	 * Keep the outcome for the next page view of this user.
	 *
	 * @param string $type    success or error.
	 * @param string $message Message.
	 * @param string $link    Download link (export).
	 */
	public static function remember( $type, $message, $link = '' ) {
		set_transient(
			'kycb_notice_' . get_current_user_id(),
			array(
				'type'    => $type,
				'message' => $message,
				'link'    => $link,
			),
			5 * MINUTE_IN_SECONDS
		);
	}

	/**
	 * Show (once) the outcome of the last action (admin_notices).
	 */
	public static function notices() {
		$key    = 'kycb_notice_' . get_current_user_id();
		$notice = get_transient( $key );
		if ( ! is_array( $notice ) ) {
			return;
		}
		delete_transient( $key );
		$type = 'error' === $notice['type'] ? 'error' : 'success';
		echo '<div class="notice notice-' . esc_attr( $type ) . ' is-dismissible kycb-notice"><p>' . esc_html( (string) $notice['message'] );
		if ( '' !== (string) $notice['link'] ) {
			echo ' <a class="kycb-export-link" href="' . esc_url( (string) $notice['link'] ) . '">' . esc_html__( 'Download the export file', 'kyc-bridge' ) . '</a>';
		}
		echo '</p></div>';
	}
}
