<?php
/**
 * Self-service: a person sees their own KYC state ([kyc_status] and the profile page) and can
 * withdraw their consent.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * The [kyc_status] shortcode, the "Identity verification" section of the profile, and the
 * withdrawal (admin-post.php, logged-in users only, a nonce per user and a confirmation tick).
 * The bridge then removes the KYC tags in FluentCRM and asks Persona to redact.
 */
final class Self_Service {

	const ACTION = 'kycb_withdraw_consent';

	/**
	 * The nonce action of a user's withdrawal.
	 *
	 * @param int $user_id User id.
	 * @return string
	 */
	public static function nonce_action( $user_id ) {
		return self::ACTION . '_' . (int) $user_id;
	}

	/**
	 * The shortcode (init).
	 */
	public static function register() {
		add_shortcode( 'kyc_status', array( self::class, 'shortcode_status' ) );
	}

	/**
	 * Outcome notices on the profile page (load-profile.php).
	 */
	public static function load_profile() {
		add_action( 'admin_notices', array( Admin_Actions::class, 'notices' ) );
	}

	/**
	 * [kyc_status]: the logged-in person's state and, when the bridge knows them, the withdrawal.
	 *
	 * @return string
	 */
	public static function shortcode_status() {
		if ( ! is_user_logged_in() ) {
			return '<div class="kycb-self kycb-self--login"><p>' . esc_html__( 'Please log in to see your identity verification.', 'kyc-bridge' ) . '</p></div>';
		}
		wp_enqueue_style( 'kycb-verify' );
		ob_start();
		$notice = self::take_notice();
		if ( $notice ) {
			printf( '<p class="kycb-self-notice kycb-self-notice--%1$s" role="status">%2$s</p>', esc_attr( $notice['type'] ), esc_html( $notice['message'] ) );
		}
		self::render_state( get_current_user_id(), '' );
		return '<div class="kycb-self">' . ob_get_clean() . '</div>';
	}

	/**
	 * The profile's section (show_user_profile): the person's own state; the withdrawal button
	 * belongs to a form outside the profile form (forms cannot nest), see profile_form().
	 *
	 * @param \WP_User $user The user whose profile this is (the current user).
	 */
	public static function profile_section( $user ) {
		if ( ! $user instanceof \WP_User || get_current_user_id() !== $user->ID ) {
			return;
		}
		echo '<h2 id="kycb-identity">' . esc_html__( 'Identity verification', 'kyc-bridge' ) . '</h2><div class="kycb-self">';
		self::render_state( $user->ID, 'kycb-withdraw-form' );
		echo '</div>';
	}

	/**
	 * The withdrawal form of the profile page, after the profile form (admin_footer-profile.php).
	 */
	public static function profile_form() {
		echo '<form id="kycb-withdraw-form" method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '"><input type="hidden" name="action" value="' . esc_attr( self::ACTION ) . '" />';
		wp_nonce_field( self::nonce_action( get_current_user_id() ), '_kycb_nonce' );
		echo '</form>';
	}

	/**
	 * The state and, when there is consent to withdraw, the withdrawal controls.
	 *
	 * @param int    $user_id User id.
	 * @param string $form_id Id of a form elsewhere the controls belong to, or '' for a form here.
	 */
	private static function render_state( $user_id, $form_id ) {
		$answer = Kyc_Lookup::for_user( $user_id );
		if ( is_wp_error( $answer ) ) {
			echo '<p class="kycb-status" data-status="unavailable">' . esc_html__( 'We cannot check your verification right now. Please try again later.', 'kyc-bridge' ) . '</p>';
			return;
		}
		$status = (string) $answer['status'];
		$state  = Status::describe_answer( $answer );
		printf(
			'<p class="kycb-status" data-status="%1$s"><strong class="kycb-status-label">%2$s</strong> <span class="kycb-status-message">%3$s</span></p>',
			esc_attr( $status ),
			esc_html( $state['label'] ),
			esc_html( $state['message'] )
		);
		$pending = Registration::pending( $user_id );
		if ( '' !== $pending ) {
			$labels = Settings::user_type_labels();
			/* translators: %s: user type, e.g. Customer. */
			echo '<p class="kycb-pending">' . esc_html( sprintf( __( 'Your account waits for your identity verification (%s). We have emailed you a link.', 'kyc-bridge' ), isset( $labels[ $pending ] ) ? $labels[ $pending ] : $pending ) ) . '</p>';
		}
		if ( ! empty( $answer['consent_withdrawn'] ) ) {
			echo '<p class="kycb-withdrawn">' . esc_html__( 'You have withdrawn your consent: nothing more is sent to our CRM or to Persona for you. The verification decision stays on record as the law requires.', 'kyc-bridge' ) . '</p>';
			return;
		}
		if ( 'not_started' === $status ) {
			return;
		}
		$form = '' === $form_id ? '' : ' form="' . esc_attr( $form_id ) . '"';
		if ( '' === $form_id ) {
			echo '<form method="post" class="kycb-withdraw" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '"><input type="hidden" name="action" value="' . esc_attr( self::ACTION ) . '" />';
			wp_nonce_field( self::nonce_action( $user_id ), '_kycb_nonce' );
		} else {
			echo '<div class="kycb-withdraw">';
		}
		echo '<p>' . esc_html__( 'You can withdraw your consent to the identity verification. We then remove the verification tags from our CRM and ask Persona to delete your verification data.', 'kyc-bridge' ) . '</p>';
		echo '<p><label><input type="checkbox" name="confirm" value="1" required' . $form . ' /> ' . esc_html__( 'Yes, I withdraw my consent.', 'kyc-bridge' ) . '</label></p>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped, KycBridge.Security.EscapeOutput.OutputNotEscaped -- $form is built with esc_attr() above.
		echo '<p><button type="submit" class="wp-element-button button kycb-withdraw-button"' . $form . '>' . esc_html__( 'Withdraw consent', 'kyc-bridge' ) . '</button></p>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped, KycBridge.Security.EscapeOutput.OutputNotEscaped -- as above.
		echo '' === $form_id ? '</form>' : '</div>';
	}

	/**
	 * The withdrawal (admin_post_kycb_withdraw_consent: logged-in users only).
	 */
	public static function handle() {
		$user = wp_get_current_user();
		if ( ! $user->exists() ) {
			wp_die( esc_html__( 'Please log in.', 'kyc-bridge' ), 403 );
		}
		check_admin_referer( self::nonce_action( $user->ID ), '_kycb_nonce' );
		if ( empty( $_POST['confirm'] ) ) {
			Admin_Actions::remember( 'error', __( 'Tick the box to confirm that you withdraw your consent.', 'kyc-bridge' ) );
		} else {
			$answer = Bridge_Client::from_settings()->withdraw_consent( $user->user_email );
			Kyc_Lookup::forget( $user->user_email );
			if ( ! is_wp_error( $answer ) ) {
				Admin_Actions::remember( 'success', __( 'Your consent is withdrawn.', 'kyc-bridge' ) );
			} elseif ( 404 === self::status_of( $answer ) ) {
				Admin_Actions::remember( 'error', __( 'We hold no consent of yours to withdraw.', 'kyc-bridge' ) );
			} else {
				Admin_Actions::remember( 'error', __( 'Your withdrawal could not be recorded right now. Please try again later or contact us.', 'kyc-bridge' ) );
			}
		}
		$back = wp_get_referer();
		wp_safe_redirect( $back ? $back : admin_url( 'profile.php#kycb-identity' ) );
		exit;
	}

	/**
	 * The HTTP status of a bridge error (0 when none).
	 *
	 * @param \WP_Error $error Error.
	 * @return int
	 */
	private static function status_of( $error ) {
		$data = $error->get_error_data();
		return is_array( $data ) && isset( $data['status'] ) ? (int) $data['status'] : 0;
	}

	/**
	 * The outcome kept for this user by the last action, once.
	 *
	 * @return array|null {type, message}
	 */
	private static function take_notice() {
		$key    = 'kycb_notice_' . get_current_user_id();
		$notice = get_transient( $key );
		if ( ! is_array( $notice ) ) {
			return null;
		}
		delete_transient( $key );
		return $notice;
	}
}
