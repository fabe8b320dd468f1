<?php
/**
 * Registration trigger: a new user of a configured role is emailed a verification link and stays
 * pending until the bridge reports them verified for that user type.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * The user_register hook, the pending state and its end.
 */
final class Registration {

	/**
	 * User meta holding the user type a new user must still verify.
	 */
	const META = 'kycb_pending_verification';

	/**
	 * Hook up.
	 */
	public static function register() {
		add_action( 'user_register', array( self::class, 'registered' ), 20, 1 );
	}

	/**
	 * The user type for a user's roles ('' when no role is configured).
	 *
	 * @param string[] $roles Roles.
	 * @return string
	 */
	public static function type_for_roles( $roles ) {
		$map = Settings::registration_roles();
		foreach ( (array) $roles as $role ) {
			if ( isset( $map[ $role ] ) ) {
				return $map[ $role ];
			}
		}
		return '';
	}

	/**
	 * A new user (user_register): pending and a link on its way when their role needs it.
	 *
	 * @param int $user_id User id.
	 */
	public static function registered( $user_id ) {
		$user = get_userdata( (int) $user_id );
		if ( ! $user || ! is_email( $user->user_email ) ) {
			return;
		}
		$type = self::type_for_roles( $user->roles );
		if ( '' === $type || Purchases::verified( $user->user_email, $type ) ) {
			return;
		}
		update_user_meta( $user->ID, self::META, $type );
		Bridge_Client::from_settings()->send_link( $user->user_email, $type, (string) $user->first_name, 'wp-user:' . $user->ID );
	}

	/**
	 * The user type a user still has to verify, '' when none (the pending state ends once the
	 * bridge reports them verified).
	 *
	 * @param int $user_id User id.
	 * @return string
	 */
	public static function pending( $user_id ) {
		$type = (string) get_user_meta( (int) $user_id, self::META, true );
		if ( '' === $type ) {
			return '';
		}
		$user = get_userdata( (int) $user_id );
		if ( $user && Purchases::verified( $user->user_email, $type ) ) {
			delete_user_meta( (int) $user_id, self::META );
			return '';
		}
		return $type;
	}
}
